"""Lifetime of a native handle shared by the binding's classes (internal)."""

import ctypes

from ._native import EngineError, check


class NativeObject:
    """Owns one engine handle: ``close()`` (also on ``with`` exit and garbage collection) frees it with the
    subclass's ``_free`` function; ``_handle()`` raises EngineError (code 2) once it is closed. Pickling and
    ``copy.copy`` / ``copy.deepcopy`` raise TypeError (a copy would share, and then free, the same handle)."""

    _free = None  # the engine_*_free function of the handle kind
    _what = "object"

    def close(self):
        """Frees the native object now. Further calls raise EngineError."""
        h, self._h = getattr(self, "_h", None), None
        if h:
            check(type(self)._free(h))

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: nothing useful to do
            pass

    def __reduce_ex__(self, protocol):
        # The state is a raw native handle: a pickled, copied or deep-copied object would be a second owner of it (the
        # first one collected frees the other's index) or, in another process, a number that names nothing.
        raise TypeError(f"cannot pickle or copy a minedex {type(self).__name__}: it owns a native {self._what}; "
                        "save() it and load it again instead.")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _handle(self):
        if not self._h:
            raise EngineError(f"The {self._what} is closed.", 2)
        return self._h

    def _text(self, fn):
        """A string read with an ``engine_*_description``-style function (size query, then copy)."""
        needed = ctypes.c_int64()
        check(fn(self._handle(), None, 0, ctypes.byref(needed)))
        buf = ctypes.create_string_buffer(needed.value)
        check(fn(self._handle(), buf, needed.value, None))
        return buf.value.decode("utf-8")
