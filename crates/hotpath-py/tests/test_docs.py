"""Every public class, function, method and property of the package has
a docstring."""

from __future__ import annotations

import inspect

import hotpath


def public_members(obj: object) -> list:
    return [
        (name, member)
        for name, member in inspect.getmembers(obj)
        if not name.startswith("_") and (callable(member) or isinstance(member, property)
                                         or type(member).__name__ == "getset_descriptor")
    ]


def test_every_public_name_is_documented() -> None:
    missing = []
    for name in hotpath.__all__:
        if name.startswith("__"):
            continue
        obj = getattr(hotpath, name)
        if not (inspect.getdoc(obj) or "").strip() and name not in ("Knob", "KnobValue"):
            missing.append(name)
        if inspect.isclass(obj) and obj.__module__.startswith("hotpath"):
            for member_name, member in public_members(obj):
                if issubclass(obj, BaseException) and member_name in dir(Exception):
                    continue
                if not (inspect.getdoc(member) or "").strip():
                    missing.append(f"{name}.{member_name}")
    assert not missing, missing


def test_the_module_is_documented() -> None:
    assert "governed real-time tuning" in (hotpath.__doc__ or "")
    assert hotpath.client.__doc__ and hotpath._errors.__doc__
