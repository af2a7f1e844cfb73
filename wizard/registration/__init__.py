"""App registration through Microsoft Graph (`mailwizard register`): after one
admin device-code sign-in, the portal steps of the guides done by the wizard
(app, service principal, permissions, admin consent, credential), the result
written into the config and tested. ``needs`` says what a config needs (and the
dry-run plan), ``graph`` is the small Graph client, ``engine`` does the work.
Above ``wizard.check`` (it runs the connection test), below the CLI and screens."""
