"""Layer 5: signing in to Microsoft Entra ID. Tokens with MSAL for the client secret, password and
certificate flows (`signin`), the device code flow (`device_code`), what they share
(`msal_common`), certificates (`certificates`), a token's claims against the config (`claims`)
and tenant discovery from a domain (`discovery`)."""
