"""Every extension point is one Registry, and every way to write one applies the duplicate check."""

from __future__ import annotations

import pytest

from gatesearch._registry import Registry


def test_every_way_to_write_a_registry_refuses_a_taken_name():
    reg: Registry[object] = Registry("widget")
    a, b = object(), object()
    reg.register("a", a)
    reg.register("a", a)  # the very same entry again: a no-op
    reg["a"] = a
    for write in (lambda: reg.register("a", b), lambda: reg.__setitem__("a", b), lambda: reg.update({"a": b}),
                  lambda: reg.update(a=b), lambda: reg.__ior__({"a": b})):
        with pytest.raises(ValueError, match="widget 'a' is already registered; unregister it first"):
            write()
    assert reg["a"] is a
    assert reg.setdefault("a", b) is a and reg.setdefault("c", b) is b
    reg.unregister("a")
    reg["a"] = b  # replaced after unregister
    assert reg["a"] is b
    with pytest.raises(ValueError, match=r"unknown widget 'cc'.*did you mean 'c'"):
        reg.lookup("cc")


def test_the_extension_points_are_registries():
    from gatesearch.models.gates.base import GATES
    from gatesearch.models.gates.registry import GATE_CONFIGS
    from gatesearch.objectives.base import OBJECTIVES
    from gatesearch.objectives.data import DATASETS
    from gatesearch.search.schedulers.registry import SCHEDULERS
    from gatesearch.search.searchers.registry import SEARCHERS

    for reg in (GATES, GATE_CONFIGS, OBJECTIVES, DATASETS, SEARCHERS, SCHEDULERS):
        assert type(reg) is Registry, reg
    assert {"fifo", "moasha"} <= set(SCHEDULERS) and {"tpe", "nsga2", "random"} <= set(SEARCHERS)


def test_a_registered_scheduler_is_a_valid_setting_and_another_schedulers_settings_are_refused():
    from gatesearch.search.config.settings import SearchSettings
    from gatesearch.search.schedulers.registry import SCHEDULERS, SchedulerRequest, SchedulerSpec, register_scheduler

    built = []
    register_scheduler(SchedulerSpec("every_other", "test", build=lambda r: built.append(r) or None))
    try:
        settings = SearchSettings(scheduler="every_other")
        assert SCHEDULERS[settings.scheduler].build(SchedulerRequest(("max",), ("acc",), 4, settings)) is None
        assert built and built[0].max_epochs == 4
        with pytest.raises(ValueError, match="moasha_brackets: a setting of MO-ASHA, but scheduler is 'every_other'; "
                                             "set scheduler: moasha"):
            SearchSettings(scheduler="every_other", moasha_brackets=2)
        with pytest.raises(ValueError, match="scheduler 'every_other' is already registered"):
            register_scheduler(SchedulerSpec("every_other", "again", build=lambda r: None))
    finally:
        SCHEDULERS.unregister("every_other")
    with pytest.raises(ValueError, match=r"scheduler: unknown 'every_other'"):
        SearchSettings(scheduler="every_other")


def test_every_setting_has_its_default_bounds_and_meaning_written_once():
    """To add a setting: a field of SearchSettings (its default), its meaning in the docstring, and for a
    number its bounds in BOUNDS; the docs' settings table is generated from these (scripts/gen_docs.py)."""
    from dataclasses import MISSING, fields

    from gatesearch.search.config.settings import BOUNDS, SearchSettings

    doc = SearchSettings.__doc__ or ""
    names = {f.name for f in fields(SearchSettings)}
    for f in fields(SearchSettings):
        assert f.default is not MISSING or f.default_factory is not MISSING, f"{f.name} has no default"
        assert f"{f.name}:" in doc, f"{f.name} has no meaning in SearchSettings' docstring"
        if type(f.default) in (int, float):
            assert f.name in BOUNDS, f"{f.name} is a number without bounds in BOUNDS"
    assert set(BOUNDS) <= names
