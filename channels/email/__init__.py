"""E-mail: an IMAP mailbox polled with aioimaplib (`imap.py`), replies sent with aiosmtplib (`smtp.py`).

`parse.py` turns a raw message into what the inbox keeps, `sanitize.py` makes its HTML safe to show,
`compose.py` writes the reply with the threading headers, `adapter.py` ties them to the hub's contract.
"""
