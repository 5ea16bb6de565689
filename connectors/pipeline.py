"""The parse-and-map entry point the transport layer calls once per message.

``Pipeline.handle(raw)`` returns a MappedMessage (outcome "mapped" with events, or "ignored")
or raises MessageRejected with a stable reason code. ``Pipeline.header(raw)`` reads MSH only, for
the idempotency check before the full mapping. Profiles are loaded and compiled once.
"""

from __future__ import annotations

import contextlib

from connectors.errors import MessageRejected
from connectors.events import MappedMessage
from connectors.mapper import Mapper
from connectors.parse import MessageHeader, decode_prepared, prepare, read_header
from connectors.phi import Pseudonymiser
from connectors.profile import Profile, load_profiles, select_profile
from vigil.settings import Settings


class Pipeline:
    """Bytes of one message -> MappedMessage, using the sender's mapping profile."""

    def __init__(self, settings: Settings, profiles: list[Profile] | None = None) -> None:
        self.settings = settings
        if profiles is None:
            profiles = load_profiles(settings.profiles_dir)
        self.profiles = profiles
        self.max_bytes = settings.max_message_bytes
        self._pseudo = Pseudonymiser(settings.pseudonym_secret.get_secret_value())
        self._mappers: dict[str, Mapper] = {p.name: Mapper(p, self._pseudo) for p in profiles}
        self._route: dict[tuple[str, str], Mapper | None] = {}

    def header(self, raw: bytes) -> MessageHeader:
        """MSH of one message (sender, control id, type, version, charset); cheap."""
        return read_header(raw)

    def profile_for(self, application: str, facility: str) -> Profile | None:
        m = self._mapper_for(application, facility)
        return m.p if m is not None else None

    def _mapper_for(self, application: str, facility: str) -> Mapper | None:
        key = (application, facility)
        if key not in self._route:
            if len(self._route) > 10_000:  # garbage MSH-3/MSH-4 values must not grow it forever
                self._route.clear()
            prof = select_profile(self.profiles, application, facility)
            self._route[key] = self._mappers[prof.name] if prof is not None else None
        return self._route[key]

    def handle(self, raw: bytes) -> MappedMessage:
        """Parse and map one message. Raises MessageRejected; never anything else on bad input."""
        if len(raw) > self.max_bytes:
            hdr = None
            with contextlib.suppress(MessageRejected):
                hdr = read_header(raw[:4096])
            raise MessageRejected(
                "too_large",
                f"the message is {len(raw)} bytes, over max_message_bytes ({self.max_bytes}): "
                "raise VIGIL_MAX_MESSAGE_BYTES or ask the sender to split it",
                sender=hdr.sender if hdr else "",
                control_id=hdr.control_id if hdr else "",
                message_type=hdr.message_type if hdr else "",
            )
        data, hdr = prepare(raw)
        key = (hdr.sending_application, hdr.sending_facility)
        mapper = self._route[key] if key in self._route else self._mapper_for(*key)
        if mapper is None:
            raise MessageRejected(
                "unknown_sender",
                f"no mapping profile matches sending application {hdr.sending_application!r} "
                f"at facility {hdr.sending_facility!r} and no profile is a fallback: add a "
                "profile (vigil profiles check) to profiles_dir",
                sender=hdr.sender,
                control_id=hdr.control_id,
                message_type=hdr.message_type,
            )
        msg = decode_prepared(data, hdr)
        try:
            return mapper.map(msg)
        except MessageRejected:
            raise
        except (ValueError, IndexError, KeyError, TypeError, AttributeError) as exc:
            # A shape no rule foresaw: reject rather than crash the listener, and say where.
            raise MessageRejected(
                "malformed",
                f"the message could not be mapped ({type(exc).__name__} in profile "
                f"{mapper.p.name!r}): check its structure against the profile with "
                "`vigil profiles check`",
                sender=hdr.sender,
                control_id=hdr.control_id,
                message_type=hdr.message_type,
            ) from exc
