"""The directory: users, groups, their phones and PINs."""
