# A real SMTP server for Berth's tests: aiosmtpd (Debian's python3-aiosmtpd) with STARTTLS
# required, AUTH (PLAIN, LOGIN) only over TLS with one known user, and every accepted message
# written to a Maildir. Stops when its standard input closes (the test process is gone).
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword

cert, key, maildir, port, user, password = sys.argv[1:7]
context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == user
        and auth_data.password.decode() == password
    )
    # handled=False: aiosmtpd answers (235, or 535 on a refusal) itself.
    return AuthResult(success=ok, handled=False)


controller = Controller(
    Mailbox(maildir),
    hostname="127.0.0.1",
    port=int(port),
    tls_context=context,
    require_starttls=True,
    authenticator=authenticator,
    auth_require_tls=True,
)
controller.start()
print("ready", flush=True)
sys.stdin.read()
controller.stop()
