"""Record classes: the part of :mod:`dataclasses` this package uses, without importing it.

``dataclasses`` imports ``inspect`` (and with it ``ast``, ``dis``, ``tokenize``, ``linecache``):
about 9 ms of the ``portmap-natpmp`` command's start-up, for classes that only hold values.
``@record_class`` gives a class an ``__init__`` over its annotated fields (in order, with defaults and
``field(default_factory=...)``), ``__repr__``, ``__eq__`` and, when ``frozen=True``, immutability
and ``__hash__``.  :func:`asdict` turns a record (and the records, lists and dicts inside it)
into plain data.  Fields are the class's own annotations; records do not inherit from records.
"""

from __future__ import annotations

_MISSING = object()


class FrozenInstanceError(AttributeError):
    """Assignment to a field of a frozen record."""


class _Factory:
    __slots__ = ("make",)

    def __init__(self, make):
        self.make = make


def field(default_factory):
    """A field whose default is made anew for each instance (``field(default_factory=list)``)."""
    return _Factory(default_factory)


def _frozen_setattr(self, name, _value):
    raise FrozenInstanceError(f"cannot assign to field {name!r} of a frozen {type(self).__name__}")


def _frozen_delattr(self, name):
    raise FrozenInstanceError(f"cannot delete field {name!r} of a frozen {type(self).__name__}")


def record_class(cls=None, *, frozen=False):
    """Class decorator: ``@record_class`` or ``@record_class(frozen=True)``."""
    def wrap(klass):
        names = tuple(name for name, annotation in klass.__dict__.get("__annotations__", {}).items()
                      if not str(annotation).startswith(("ClassVar", "typing.ClassVar")))
        defaults = {}
        for name in names:
            value = klass.__dict__.get(name, _MISSING)
            if value is _MISSING:
                if defaults:
                    raise TypeError(f"{klass.__name__}: field {name!r} without a default follows one with a default")
                continue
            defaults[name] = value
            if isinstance(value, _Factory):
                delattr(klass, name)
        _install(klass, names, defaults, frozen)
        return klass
    return wrap if cls is None else wrap(cls)


def _install(klass, names, defaults, frozen):
    known = frozenset(names)
    title = klass.__name__
    setter = object.__setattr__

    def __init__(self, *args, **kwargs):
        if len(args) > len(names):
            raise TypeError(f"{title}() takes {len(names)} positional arguments but {len(args)} were given")
        values = dict(zip(names, args))
        for key, value in kwargs.items():
            if key not in known:
                raise TypeError(f"{title}() got an unexpected keyword argument {key!r}")
            if key in values:
                raise TypeError(f"{title}() got multiple values for argument {key!r}")
            values[key] = value
        for name in names:
            if name in values:
                value = values[name]
            else:
                value = defaults.get(name, _MISSING)
                if value is _MISSING:
                    raise TypeError(f"{title}() missing required argument: {name!r}")
                if isinstance(value, _Factory):
                    value = value.make()
            setter(self, name, value)
        post_init = getattr(self, "__post_init__", None)
        if post_init is not None:
            post_init()

    def __repr__(self):
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"{klass.__qualname__}({inner})"

    def __eq__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in names)

    klass.__record_fields__ = names
    klass.__init__ = __init__
    klass.__repr__ = __repr__
    klass.__eq__ = __eq__
    if frozen:
        klass.__setattr__ = _frozen_setattr
        klass.__delattr__ = _frozen_delattr
        klass.__hash__ = lambda self: hash(tuple(getattr(self, name) for name in names))
    else:
        klass.__hash__ = None


def fields(obj):
    """The field names of a record class or instance, in order."""
    return obj.__record_fields__


def asdict(obj):
    """A record as a dict, records, lists, tuples and dicts inside it converted too."""
    if hasattr(type(obj), "__record_fields__"):
        return {name: asdict(getattr(obj, name)) for name in obj.__record_fields__}
    if isinstance(obj, (list, tuple)):
        return type(obj)(asdict(item) for item in obj)
    if isinstance(obj, dict):
        return {key: asdict(value) for key, value in obj.items()}
    return obj
