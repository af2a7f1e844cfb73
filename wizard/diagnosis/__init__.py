"""Layer 3: why something failed. The catalogue of codes (AADSTS, EWS, Graph, SMTP, IMAP, network)
with cause, fix and guide step (`catalogue`), and what turns an exception or an MSAL answer into
one of its entries (`classify`)."""
