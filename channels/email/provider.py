"""E-mail as the admin page and the hub see it: an IMAP mailbox to read and an SMTP server to answer from.

Form defaults the page should pre-fill: imap_port 993, imap_ssl checked, smtp_port 587, smtp_security
"starttls" (choices: none / starttls / ssl), folder "INBOX"; `prepare_config` applies them to blanks.
"""

from __future__ import annotations

from channels.email.adapter import EmailAdapter
from channels.email.config import MailboxConfig, prepare_config
from channels.provider_spec import AccountData, Field, Provider
from switchboard.errors import N_
from switchboard.files import FileStore
from switchboard.settings import Settings


def build(account: AccountData, settings: Settings) -> EmailAdapter:
    config = MailboxConfig.from_account(account.config, account.secrets, display_name=account.name)
    files = FileStore(settings.files_root, settings.media_max_bytes)
    return EmailAdapter(str(account.id), config, files)


PROVIDER = Provider(
    channel=EmailAdapter.channel,
    title="E-mail (IMAP / SMTP)",
    build=build,
    prepare=prepare_config,
    icon="mail",
    fields=(
        Field(
            "address",
            N_("E-mail address"),
            kind="email",
            help=N_("The address customers write to; replies are sent from it."),
        ),
        Field("imap_host", N_("IMAP server"), help=N_("For example imap.gmail.com.")),
        Field(
            "imap_port",
            N_("IMAP port"),
            kind="number",
            required=False,
            default="993",
            help=N_("Usually 993."),
        ),
        Field(
            "imap_ssl",
            N_("IMAP over SSL/TLS"),
            kind="checkbox",
            required=False,
            default="on",
            help=N_("Leave on unless the server only speaks plain IMAP (port 143)."),
        ),
        Field("smtp_host", N_("SMTP server"), help=N_("For example smtp.gmail.com.")),
        Field(
            "smtp_port",
            N_("SMTP port"),
            kind="number",
            required=False,
            default="587",
            help=N_("Usually 587."),
        ),
        Field(
            "smtp_security",
            N_("SMTP security"),
            required=False,
            kind="select",
            default="starttls",
            choices=(("starttls", "STARTTLS"), ("ssl", "SSL/TLS"), ("none", N_("None"))),
            help=N_("starttls (port 587), ssl (port 465) or none (a relay on your own network)."),
        ),
        Field(
            "username",
            N_("User name"),
            required=False,
            help=N_("For both servers; leave empty to use the e-mail address."),
        ),
        Field(
            "password",
            N_("Password"),
            secret=True,
            kind="password",
            help=N_("The mailbox password, or an app password where the provider requires one."),
        ),
        Field(
            "folder",
            N_("Folder"),
            required=False,
            default="INBOX",
            help=N_("The IMAP folder to read; INBOX unless you filter customer mail elsewhere."),
        ),
    ),
    notes=(
        N_(
            "The hub checks the folder regularly and marks the mail it took in as read. Mail already "
            "marked as read (by a person or another program) is not taken in."
        ),
    ),
)
