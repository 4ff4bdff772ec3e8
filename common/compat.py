"""What differs between the two lines of the stack (docs/platforms.md): TFX 1.16 with protobuf 3.20
and TFX 1.21 with protobuf 6. One function per difference, each saying which versions differ, so
the rest of the code is written once for both lines."""
from __future__ import annotations

from google.protobuf import json_format, message_factory


def message_to_dict_with_defaults(message, **kwargs) -> dict:
    """``json_format.MessageToDict`` with fields at their default value included: protobuf 3.20
    calls the flag ``including_default_value_fields``; protobuf 5.26 renamed it
    ``always_print_fields_with_no_presence`` and protobuf 6 removed the old name."""
    try:
        return json_format.MessageToDict(message, always_print_fields_with_no_presence=True, **kwargs)
    except TypeError:  # protobuf < 5.26 (the TFX 1.16 line)
        return json_format.MessageToDict(message, including_default_value_fields=True, **kwargs)


def message_class(descriptor):
    """The generated class of a message ``descriptor``: ``message_factory.GetMessageClass`` since
    protobuf 4.21; protobuf 3.20 has only ``MessageFactory().GetPrototype``, which protobuf 5
    removed."""
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(descriptor)
    return message_factory.MessageFactory(descriptor.file.pool).GetPrototype(descriptor)  # protobuf < 4.21
