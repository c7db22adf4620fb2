"""The deal workflow's rules, free of I/O: lifecycle, money, checks, payments, audit hashes."""
