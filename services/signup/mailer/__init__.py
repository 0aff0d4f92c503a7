"""The mailer service: sends the welcome e-mail (the sign-up saga's pivot)."""
