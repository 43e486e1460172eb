"""DTLS interop: RSA peers (GStreamer), P-224 peers (FFmpeg's WHIP muxer), and a log line
when a handshake fails.

RSA certificates (GStreamer ``webrtcbin``)
------------------------------------------
aiortc offers only ECDHE-ECDSA cipher suites. In TLS 1.2 the suite fixes the type of the
*server's* certificate, so when aiortc is the DTLS client (our answers take
``a=setup:active`` for an ``actpass`` offer, as browsers do) a server with an RSA
certificate has nothing to pick: GStreamer's ``dtlsdec`` (1.22, OpenSSL, self-signed
RSA-2048 certificate) aborts with ``no shared cipher`` and the publisher's connection fails
("Fatal SSL error"). aiortc's tracker knows this (aiortc/aiortc#1392, #1421: GStreamer and
ZLMediaKit servers; upstream keeps ECDSA-only because RFC 8827 only mandates
ECDHE-ECDSA-AES128-GCM-SHA256). ``CIPHERS`` below adds the ECDHE-RSA counterparts of
aiortc's suites, so an RSA *or* ECDSA (P-256, P-384) remote certificate works in both roles
(tests/gst/test_dtls_interop.py); the client's certificate type never depended on the
suite. Our own certificate stays aiortc's ECDSA P-256, so as a server we still only ever
select ECDHE-ECDSA suites. The list stays short (8 suites): aiortc trimmed it in #1011
because a fragmented ClientHello breaks Mbed TLS peers (OBS).

P-224 certificates (FFmpeg's WHIP muxer)
----------------------------------------
FFmpeg's WHIP muxer (PyAV 18.1 wheel: FFmpeg 8 / libavformat 62.12, DTLS through the
bundled GnuTLS) offers ``a=setup:passive``, so an aiortc answerer is the DTLS *client*.
The muxer's self-signed certificate is ECDSA on **secp224r1 (P-224)** (seen in the
Certificate message of a loopback capture, ``namedCurve: 1.3.132.0.33``). With TLS 1.2
an OpenSSL client checks that the server certificate's curve is one of its own
``supported_groups`` (``tls12_check_peer_sigalg`` -> ``tls1_check_group_id``).
aiortc's pyOpenSSL runs on the OpenSSL 4.0 inside the ``cryptography`` wheel, which
does not know P-224 as a TLS group at all (``SSL_CTX_set1_groups_list("P-224")``
fails), so OpenSSL aborts with ``SSL routines: wrong curve`` and sends the fatal
``illegal_parameter`` alert that FFmpeg reports as "A TLS fatal alert has been received".
Ciphers (ECDHE-ECDSA-AES128-GCM-SHA256), SRTP profile (AES128_CM_SHA1_80), extended
master secret, DTLS 1.2, roles and fingerprints all negotiate fine: handing the muxer
a P-256 certificate (``cert_file``/``key_file``) makes the unmodified aiortc work.

For such peers, the DTLS transport's ``SSL.Connection`` is replaced by
``_CompatConnection``: the same memory-BIO DTLS state machine driven through ctypes on
the OpenSSL that CPython's own ``ssl`` module links (Debian/Ubuntu images: OpenSSL 3.0,
which still implements P-224), with P-224 appended to the supported groups. Same
certificate, ciphers, SRTP profiles and verification policy as aiortc. Everything else
in aiortc (SRTP, RTP routing, SCTP) is unchanged: the object exposes just the subset of
the pyOpenSSL ``Connection`` API that ``aiortc.rtcdtlstransport`` uses and raises
pyOpenSSL's own exception classes.

Limitation: with ``-whip_flags dtls_active`` the muxer offers ``a=setup:active`` and
aiortc becomes the DTLS *server*; an OpenSSL server additionally requires the client
certificate's curve to be in the *client's* ``supported_groups``, and GnuTLS does not
list P-224 there, so that (non-default) mode still fails with "wrong curve" even on
OpenSSL 3.0. The default ``setup:passive`` offer works.

Applying it
-----------
Call ``configure_peer_connection(pc)`` right after constructing each ``RTCPeerConnection``
(before ``setRemoteDescription``; ``media.network.peer_factory`` does). It replaces the
peer's certificate by a ``CompatCertificate`` (same key and certificate) whose SSL contexts
carry ``CIPHERS``, and makes each DTLS transport of the peer log why its handshake failed
(aiortc only logs that at DEBUG). The ``mode`` picks the P-224 backend: by default
("auto") only peers whose remote SDP comes from FFmpeg's muxer (``o=FFmpeg`` /
``s=FFmpegPublishSession``) use it, ``"always"`` uses it for every peer, ``"never"`` for
none (the cipher suites and the failure log apply in every mode).

DTLS roles follow RFC 8842 through aiortc unchanged: an ``actpass`` offer is answered
``active`` (we are the client), ``active`` with ``passive``, ``passive`` with ``active``.

Pinned to aiortc >=1.16,<1.17: it touches ``RTCPeerConnection.__certificates`` and
``__createDtlsTransport``, ``RTCCertificate._create_ssl_context``,
``RTCDtlsTransport.__log_debug`` and the module global ``SSL`` of
``aiortc.rtcdtlstransport`` (see ``check_aiortc_internals``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import inspect
import logging
import ssl
import types
import weakref
from collections.abc import Callable
from typing import Any, Literal

import aiortc
import aiortc.rtcdtlstransport as rtcdtlstransport
from aiortc import RTCPeerConnection
from aiortc.rtcdtlstransport import RTCCertificate, RTCDtlsFingerprint, SRTPProtectionProfile
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL

logger = logging.getLogger(__name__)

Mode = Literal["auto", "always", "never"]

SUPPORTED_AIORTC = ((1, 16), (1, 17))
# aiortc's ECDHE-ECDSA suites, each followed by its ECDHE-RSA counterpart (RSA servers)
CIPHERS = (
    b"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    b"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    b"ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:"
    b"ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA"
)
# P-224 last: only there so that a P-224 peer certificate is acceptable.
GROUPS = b"X25519:P-256:P-384:P-521:P-224"
FFMPEG_SDP_MARKERS = ("o=FFmpeg ", "s=FFmpegPublishSession")

# OpenSSL constants (stable ABI values)
_SSL_CTRL_SET_MTU = 17
_SSL_CTRL_SET_GROUPS_LIST = 92
_DTLS_CTRL_GET_TIMEOUT = 73
_DTLS_CTRL_HANDLE_TIMEOUT = 74
_SSL_OP_NO_QUERY_MTU = 1 << 12
_SSL_OP_NO_TICKET = 1 << 14
_SSL_VERIFY_PEER = 0x01
_SSL_VERIFY_FAIL_IF_NO_PEER_CERT = 0x02
_SSL_ERROR_SSL = 1
_SSL_ERROR_WANT_READ = 2
_SSL_ERROR_WANT_WRITE = 3
_SSL_ERROR_ZERO_RETURN = 6
_EVP_PKEY_EC = 408
_MTU = 1200

_p = ctypes.c_void_p
_VERIFY_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)
_accept_any_cert = _VERIFY_CB(lambda ok, store: 1)  # fingerprints are checked by aiortc


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _SrtpProfile(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("id", ctypes.c_ulong)]


class CompatUnavailable(RuntimeError):
    pass


def _load_libs() -> tuple[ctypes.CDLL, ctypes.CDLL]:
    """libssl/libcrypto of CPython's ``ssl`` module (already mapped into the process)."""
    major = ssl.OPENSSL_VERSION_INFO[0]
    if major < 3:
        raise CompatUnavailable(f"DTLS compat backend needs OpenSSL >= 3: {ssl.OPENSSL_VERSION}")
    try:
        libssl = ctypes.CDLL(f"libssl.so.{major}")
        libcrypto = ctypes.CDLL(f"libcrypto.so.{major}")
    except OSError:
        names = ctypes.util.find_library("ssl"), ctypes.util.find_library("crypto")
        if not all(names):
            raise CompatUnavailable("libssl/libcrypto not found") from None
        libssl, libcrypto = ctypes.CDLL(names[0]), ctypes.CDLL(names[1])

    def sig(lib: ctypes.CDLL, name: str, res: Any, *args: Any) -> None:
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, list(args)

    c_int, c_long, c_char_p = ctypes.c_int, ctypes.c_long, ctypes.c_char_p
    c_size_t = ctypes.c_size_t
    sig(libssl, "DTLS_method", _p)
    sig(libssl, "SSL_CTX_new", _p, _p)
    sig(libssl, "SSL_CTX_free", None, _p)
    sig(libssl, "SSL_CTX_set_options", ctypes.c_uint64, _p, ctypes.c_uint64)
    sig(libssl, "SSL_CTX_set_verify", None, _p, c_int, _VERIFY_CB)
    sig(libssl, "SSL_CTX_use_certificate_ASN1", c_int, _p, c_int, c_char_p)
    sig(libssl, "SSL_CTX_use_PrivateKey_ASN1", c_int, c_int, _p, c_char_p, c_long)
    sig(libssl, "SSL_CTX_check_private_key", c_int, _p)
    sig(libssl, "SSL_CTX_set_cipher_list", c_int, _p, c_char_p)
    sig(libssl, "SSL_CTX_set_tlsext_use_srtp", c_int, _p, c_char_p)
    sig(libssl, "SSL_CTX_ctrl", c_long, _p, c_int, c_long, _p)
    sig(libssl, "SSL_new", _p, _p)
    sig(libssl, "SSL_free", None, _p)
    sig(libssl, "SSL_set_bio", None, _p, _p, _p)
    sig(libssl, "SSL_set_connect_state", None, _p)
    sig(libssl, "SSL_set_accept_state", None, _p)
    sig(libssl, "SSL_do_handshake", c_int, _p)
    sig(libssl, "SSL_get_error", c_int, _p, c_int)
    sig(libssl, "SSL_read", c_int, _p, c_char_p, c_int)
    sig(libssl, "SSL_write", c_int, _p, c_char_p, c_int)
    sig(libssl, "SSL_shutdown", c_int, _p)
    sig(libssl, "SSL_ctrl", c_long, _p, c_int, c_long, _p)
    sig(libssl, "SSL_get1_peer_certificate", _p, _p)
    sig(libssl, "SSL_get_selected_srtp_profile", ctypes.POINTER(_SrtpProfile), _p)
    sig(
        libssl,
        "SSL_export_keying_material",
        c_int,
        _p,
        c_char_p,
        c_size_t,
        c_char_p,
        c_size_t,
        c_char_p,
        c_size_t,
        c_int,
    )
    sig(libcrypto, "BIO_s_mem", _p)
    sig(libcrypto, "BIO_new", _p, _p)
    sig(libcrypto, "BIO_write", c_int, _p, c_char_p, c_int)
    sig(libcrypto, "BIO_read", c_int, _p, c_char_p, c_int)
    sig(libcrypto, "BIO_ctrl_pending", c_size_t, _p)
    sig(libcrypto, "i2d_X509", c_int, _p, ctypes.POINTER(ctypes.c_char_p))
    sig(libcrypto, "X509_free", None, _p)
    sig(libcrypto, "ERR_get_error", ctypes.c_ulong)
    sig(libcrypto, "ERR_clear_error", None)
    sig(libcrypto, "ERR_error_string_n", None, ctypes.c_ulong, c_char_p, c_size_t)
    return libssl, libcrypto


_libs: tuple[ctypes.CDLL, ctypes.CDLL] | None = None


def _get_libs() -> tuple[ctypes.CDLL, ctypes.CDLL]:
    global _libs
    if _libs is None:
        _libs = _load_libs()
    return _libs


def _ssl_error(what: str) -> SSL.Error:
    _, libcrypto = _get_libs()
    errors = []
    while code := libcrypto.ERR_get_error():
        buf = ctypes.create_string_buffer(256)
        libcrypto.ERR_error_string_n(code, buf, len(buf))
        errors.append(("compat-dtls", what, buf.value.decode(errors="replace")))
    return SSL.Error(errors or [("compat-dtls", what, "failed")])


class _CompatContext:
    def __init__(self, certificate: RTCCertificate, srtp_profiles: list[SRTPProtectionProfile]):
        libssl, _ = _get_libs()
        self._libssl = libssl
        ctx = libssl.SSL_CTX_new(libssl.DTLS_method())
        if not ctx:
            raise _ssl_error("SSL_CTX_new")
        self.ptr = ctx
        libssl.SSL_CTX_set_options(ctx, _SSL_OP_NO_TICKET | _SSL_OP_NO_QUERY_MTU)
        libssl.SSL_CTX_set_verify(
            ctx, _SSL_VERIFY_PEER | _SSL_VERIFY_FAIL_IF_NO_PEER_CERT, _accept_any_cert
        )
        cert_der = certificate._cert.public_bytes(serialization.Encoding.DER)
        key_der = certificate._key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        profiles = b":".join(p.openssl_profile for p in srtp_profiles)
        ok = (
            libssl.SSL_CTX_use_certificate_ASN1(ctx, len(cert_der), cert_der) == 1
            and libssl.SSL_CTX_use_PrivateKey_ASN1(_EVP_PKEY_EC, ctx, key_der, len(key_der)) == 1
            and libssl.SSL_CTX_check_private_key(ctx) == 1
            and libssl.SSL_CTX_set_cipher_list(ctx, CIPHERS) == 1
            and libssl.SSL_CTX_set_tlsext_use_srtp(ctx, profiles) == 0  # 0 means success
            and libssl.SSL_CTX_ctrl(ctx, _SSL_CTRL_SET_GROUPS_LIST, 0, GROUPS) == 1
        )
        if not ok:
            raise _ssl_error("context setup")

    def __del__(self) -> None:
        if getattr(self, "ptr", None):
            self._libssl.SSL_CTX_free(self.ptr)
            self.ptr = None


class _CompatConnection:
    """The subset of ``OpenSSL.SSL.Connection`` that ``RTCDtlsTransport`` uses."""

    def __init__(self, context: _CompatContext) -> None:
        libssl, libcrypto = _get_libs()
        self._libssl, self._libcrypto = libssl, libcrypto
        self._context = context  # keep the SSL_CTX alive
        self._ssl = libssl.SSL_new(context.ptr)
        if not self._ssl:
            raise _ssl_error("SSL_new")
        self._into_ssl = libcrypto.BIO_new(libcrypto.BIO_s_mem())
        self._from_ssl = libcrypto.BIO_new(libcrypto.BIO_s_mem())
        libssl.SSL_set_bio(self._ssl, self._into_ssl, self._from_ssl)  # SSL owns the BIOs
        libssl.SSL_ctrl(self._ssl, _SSL_CTRL_SET_MTU, _MTU, None)
        self._pending = b""

    def __del__(self) -> None:
        if getattr(self, "_ssl", None):
            self._libssl.SSL_free(self._ssl)
            self._ssl = None

    def _raise_for(self, ret: int, what: str) -> None:
        err = self._libssl.SSL_get_error(self._ssl, ret)
        if err in (_SSL_ERROR_WANT_READ, _SSL_ERROR_WANT_WRITE):
            self._libcrypto.ERR_clear_error()
            raise SSL.WantReadError()
        if err == _SSL_ERROR_ZERO_RETURN:
            raise SSL.ZeroReturnError()
        raise _ssl_error(what)

    def set_connect_state(self) -> None:
        self._libssl.SSL_set_connect_state(self._ssl)

    def set_accept_state(self) -> None:
        self._libssl.SSL_set_accept_state(self._ssl)

    def do_handshake(self) -> None:
        ret = self._libssl.SSL_do_handshake(self._ssl)
        if ret != 1:
            self._raise_for(ret, "handshake")

    def bio_write(self, data: bytes) -> int:
        return int(self._libcrypto.BIO_write(self._into_ssl, data, len(data)))

    def bio_read(self, bufsiz: int) -> bytes:
        """Whole DTLS records, up to ``bufsiz`` bytes (one datagram for aiortc)."""
        pending = self._libcrypto.BIO_ctrl_pending(self._from_ssl)
        if pending:
            buf = ctypes.create_string_buffer(pending)
            n = self._libcrypto.BIO_read(self._from_ssl, buf, pending)
            self._pending += buf.raw[: max(n, 0)]
        if not self._pending:
            raise SSL.WantReadError()
        end = 0
        while end + 13 <= len(self._pending):
            record_end = end + 13 + int.from_bytes(self._pending[end + 11 : end + 13], "big")
            if end and record_end > bufsiz:
                break
            end = record_end
        end = end or len(self._pending)
        data, self._pending = self._pending[:end], self._pending[end:]
        return data

    def recv(self, bufsiz: int) -> bytes:
        buf = ctypes.create_string_buffer(bufsiz)
        ret = self._libssl.SSL_read(self._ssl, buf, bufsiz)
        if ret <= 0:
            self._raise_for(ret, "read")
        return buf.raw[:ret]

    def send(self, data: bytes) -> int:
        ret = self._libssl.SSL_write(self._ssl, data, len(data))
        if ret <= 0:
            self._raise_for(ret, "write")
        return int(ret)

    def shutdown(self) -> bool:
        ret = self._libssl.SSL_shutdown(self._ssl)
        if ret < 0:
            self._raise_for(ret, "shutdown")
        return ret == 1

    def DTLSv1_get_timeout(self) -> float | None:
        tv = _Timeval()
        if self._libssl.SSL_ctrl(self._ssl, _DTLS_CTRL_GET_TIMEOUT, 0, ctypes.byref(tv)):
            return tv.tv_sec + tv.tv_usec / 1e6
        return None

    def DTLSv1_handle_timeout(self) -> bool:
        ret = self._libssl.SSL_ctrl(self._ssl, _DTLS_CTRL_HANDLE_TIMEOUT, 0, None)
        if ret < 0:
            raise _ssl_error("handle_timeout")
        return bool(ret)

    def get_peer_certificate(self, *, as_cryptography: bool = False) -> x509.Certificate | None:
        cert = self._libssl.SSL_get1_peer_certificate(self._ssl)
        if not cert:
            return None
        try:
            out = ctypes.c_char_p()
            length = self._libcrypto.i2d_X509(cert, ctypes.byref(out))
            if length <= 0:
                raise _ssl_error("i2d_X509")
            der = ctypes.string_at(out, length)
            _free_openssl(self._libcrypto, out)
        finally:
            self._libcrypto.X509_free(cert)
        return x509.load_der_x509_certificate(der)

    def get_selected_srtp_profile(self) -> bytes:
        profile = self._libssl.SSL_get_selected_srtp_profile(self._ssl)
        return profile.contents.name if profile else b""

    def export_keying_material(
        self, label: bytes, olen: int, context: bytes | None = None
    ) -> bytes:
        out = ctypes.create_string_buffer(olen)
        ctx = context or b""
        ok = self._libssl.SSL_export_keying_material(
            self._ssl, out, olen, label, len(label), ctx, len(ctx), int(context is not None)
        )
        if ok != 1:
            raise _ssl_error("export_keying_material")
        return out.raw


def _free_openssl(libcrypto: ctypes.CDLL, ptr: ctypes.c_char_p) -> None:
    fn = libcrypto.CRYPTO_free
    fn.restype, fn.argtypes = None, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    fn(ctypes.cast(ptr, ctypes.c_void_p), b"media/dtls.py", 0)


class _SSLDispatch(types.ModuleType):
    """Stand-in for ``aiortc.rtcdtlstransport.SSL``: everything is pyOpenSSL's except
    that ``Connection(ctx)`` builds a ``_CompatConnection`` for a ``_CompatContext``."""

    def __init__(self) -> None:
        super().__init__("OpenSSL.SSL")

    def __getattr__(self, name: str) -> Any:
        return getattr(SSL, name)

    @staticmethod
    def Connection(context: Any, socket: Any = None) -> Any:
        if isinstance(context, _CompatContext):
            return _CompatConnection(context)
        return SSL.Connection(context, socket)


class CompatCertificate(RTCCertificate):
    """Same key and certificate; its SSL contexts carry ``CIPHERS``, and it picks the DTLS
    backend (pyOpenSSL or the P-224 one) when the handshake starts."""

    def __init__(self, base: RTCCertificate, pc: RTCPeerConnection, mode: Mode) -> None:
        super().__init__(key=base._key, cert=base._cert)
        self._pc = weakref.ref(pc)
        self._mode = mode
        self._fingerprints: list[RTCDtlsFingerprint] | None = None

    def getFingerprints(self) -> list[RTCDtlsFingerprint]:
        # aiortc hashes the certificate three times for every m-section it describes
        if self._fingerprints is None:
            self._fingerprints = super().getFingerprints()
        return list(self._fingerprints)

    def _create_ssl_context(self, srtp_profiles: list[SRTPProtectionProfile]) -> Any:
        if self._use_compat():
            logger.info("DTLS: using the P-224-capable OpenSSL backend for this peer")
            return _CompatContext(self, srtp_profiles)
        context = super()._create_ssl_context(srtp_profiles)
        context.set_cipher_list(CIPHERS)
        context.set_info_callback(_note_alert)
        return context

    def _use_compat(self) -> bool:
        if self._mode != "auto":
            return self._mode == "always"
        pc = self._pc()
        remote = pc.remoteDescription if pc is not None else None
        return remote is not None and needs_compat(remote.sdp)


_HANDSHAKE_FAILED = "x DTLS handshake failed"
_SSL_CB_ALERT, _SSL_CB_READ, _SSL_CB_WRITE = 0x4000, 0x04, 0x08
_ALERTS = "dtls_alerts"  # attribute of the SSL.Connection: the alerts of its handshake


def _note_alert(connection: SSL.Connection, where: int, value: int) -> None:
    """pyOpenSSL info callback: remember alerts, which say why a peer gave up (OpenSSL's
    error queue is empty when the *remote* aborts, e.g. GStreamer's "no shared cipher")."""
    if not where & _SSL_CB_ALERT or not where & (_SSL_CB_READ | _SSL_CB_WRITE):
        return
    try:
        name = ssl.AlertDescription(value & 0xFF).name.removeprefix("ALERT_DESCRIPTION_")
    except ValueError:
        name = str(value & 0xFF)
    alert = f"{'received' if where & _SSL_CB_READ else 'sent'} alert {name.lower()}"
    setattr(connection, _ALERTS, [*getattr(connection, _ALERTS, []), alert])


def _report_failures(transport: rtcdtlstransport.RTCDtlsTransport) -> None:
    """Log aiortc's own reason (error, fingerprint mismatch, no SRTP profile) when this
    transport's handshake fails; aiortc only passes it to ``__log_debug``."""
    log_debug = transport._RTCDtlsTransport__log_debug  # type: ignore[attr-defined]

    def __log_debug(msg: str, *args: object) -> None:
        log_debug(msg, *args)
        if msg.startswith(_HANDSHAKE_FAILED):
            reason = (msg % args)[len(_HANDSHAKE_FAILED):].strip(" ()").removesuffix(" []")
            alerts = getattr(transport._ssl, _ALERTS, [])
            if alerts:
                reason = f"{reason}; {', '.join(alerts)}"
            # "connection error": the ICE transport closed under the handshake (we hung up)
            level = logging.INFO if reason == "connection error" else logging.WARNING
            remote = [f"{c.ip}:{c.port}" for c in transport.transport.getRemoteCandidates()]
            logger.log(level, "DTLS handshake failed as %s (remote candidates %s): %s",
                       transport._role, ", ".join(remote[:4]) or "none", reason)

    transport._RTCDtlsTransport__log_debug = __log_debug  # type: ignore[attr-defined]


def needs_compat(remote_sdp: str) -> bool:
    return any(marker in remote_sdp for marker in FFMPEG_SDP_MARKERS)


def check_aiortc_internals() -> None:
    """Raise if the aiortc internals this module relies on have changed."""
    version = tuple(int(x) for x in aiortc.__version__.split(".")[:2])
    if not SUPPORTED_AIORTC[0] <= version < SUPPORTED_AIORTC[1]:
        raise RuntimeError(f"media.dtls is pinned to aiortc 1.16.x, found {aiortc.__version__}")
    if not isinstance(rtcdtlstransport.SSL, types.ModuleType):
        raise RuntimeError("aiortc.rtcdtlstransport.SSL is no longer a module global")
    start = inspect.getsource(rtcdtlstransport.RTCDtlsTransport.start)
    if "self._ssl = SSL.Connection(" not in start or "._create_ssl_context(" not in start:
        raise RuntimeError("RTCDtlsTransport.start no longer builds SSL.Connection(ctx)")
    if "self.__certificates = [" not in inspect.getsource(RTCPeerConnection.__init__):
        raise RuntimeError("RTCPeerConnection.__certificates is gone")
    peer_source = inspect.getsource(RTCPeerConnection)
    if "self.__certificates" not in peer_source:
        raise RuntimeError("RTCPeerConnection no longer passes __certificates to transports")
    if peer_source.count("self.__createDtlsTransport()") < 2:
        raise RuntimeError("RTCPeerConnection no longer uses __createDtlsTransport")
    context = inspect.getsource(RTCCertificate._create_ssl_context)
    if "ctx.set_cipher_list(" not in context or "return ctx" not in context:
        raise RuntimeError("RTCCertificate._create_ssl_context no longer returns its SSL.Context")
    transport = inspect.getsource(rtcdtlstransport.RTCDtlsTransport)
    if (
        not hasattr(rtcdtlstransport.RTCDtlsTransport, "_RTCDtlsTransport__log_debug")
        or transport.count(f'self.__log_debug("{_HANDSHAKE_FAILED} (') < 4
    ):
        raise RuntimeError("RTCDtlsTransport no longer reports handshake failures to __log_debug")


@functools.cache
def compat_available() -> bool:
    """True when the system OpenSSL can load and accepts the P-224 group."""
    try:
        libssl, _ = _get_libs()
    except (CompatUnavailable, OSError, AttributeError):
        return False
    ctx = libssl.SSL_CTX_new(libssl.DTLS_method())
    try:
        return bool(ctx) and libssl.SSL_CTX_ctrl(ctx, _SSL_CTRL_SET_GROUPS_LIST, 0, GROUPS) == 1
    finally:
        if ctx:
            libssl.SSL_CTX_free(ctx)


@functools.cache
def _checked_internals() -> None:
    """``check_aiortc_internals()`` once per process (a failure is raised every time)."""
    check_aiortc_internals()


def install() -> None:
    """Idempotent, behaviour-neutral for ordinary contexts (see ``_SSLDispatch``).
    Raises RuntimeError if the aiortc internals it relies on have changed."""
    if not isinstance(rtcdtlstransport.SSL, _SSLDispatch):
        _checked_internals()
        rtcdtlstransport.SSL = _SSLDispatch()


def configure_peer_connection(pc: RTCPeerConnection, mode: Mode = "auto") -> bool:
    """Apply the DTLS interop to ``pc`` (see the module docstring). Call before any
    description is set. Idempotent.

    Returns whether the P-224 backend can serve this peer: False when ``mode == "never"``
    or the system OpenSSL cannot provide it (the RSA cipher suites and the failure log
    apply anyway). Raises RuntimeError if the aiortc internals it relies on have changed.
    """
    _checked_internals()
    compat = mode != "never" and compat_available()
    if compat:
        install()
    elif mode != "never":
        logger.warning(
            "DTLS compat backend unavailable (%s): FFmpeg WHIP publishers will fail the handshake",
            ssl.OPENSSL_VERSION,
        )
    certs = pc._RTCPeerConnection__certificates  # type: ignore[attr-defined]
    if isinstance(certs[0], CompatCertificate):
        return compat
    certs[0] = CompatCertificate(certs[0], pc, mode if compat else "never")
    create: Callable[[], rtcdtlstransport.RTCDtlsTransport] = (
        pc._RTCPeerConnection__createDtlsTransport  # type: ignore[attr-defined]
    )

    def create_dtls_transport() -> rtcdtlstransport.RTCDtlsTransport:
        transport = create()
        _report_failures(transport)
        return transport

    pc._RTCPeerConnection__createDtlsTransport = create_dtls_transport  # type: ignore[attr-defined]
    return compat


__all__ = [
    "CIPHERS",
    "CompatCertificate",
    "check_aiortc_internals",
    "compat_available",
    "configure_peer_connection",
    "install",
    "needs_compat",
]
