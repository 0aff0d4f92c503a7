"""The registration service: cleans and validates sign-up data and starts the sign-up saga."""
