"""Layer 6, the mail runtime: what a business system calls every day to send and fetch
mail with the config the wizard wrote. See ``wizard.runtime.mailer`` for the API.

    from wizard.runtime import Mailer, Message, Attachment, MailError
"""

from wizard.runtime.mailer import Mailer
from wizard.runtime.model import Attachment, MailError, Message

__all__ = ["Mailer", "Message", "Attachment", "MailError"]
