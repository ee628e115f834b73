"""`crm_core.classifiers`: vocabularies are seeded on a new database, listed as trees in reading order,
labelled in the reader's language, validated on create / edit, never placed under themselves, and
deactivated rather than deleted; every change is audited."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core import classifiers, defaults
from crm_core.funnel_model import Classifier, Pipeline, Stage
from switchboard import migrate
from switchboard.audit import SYSTEM
from switchboard.audit_model import AuditEntry
from switchboard.db import create_engine, create_sessionmaker
from switchboard.errors import Conflict, Invalid, NotFound

Sessions = async_sessionmaker[AsyncSession]


async def test_seed_defaults_adds_every_missing_entry_once(sessions: Sessions) -> None:
    async with sessions() as db, db.begin():
        await db.execute(delete(Classifier))  # as if an admin had emptied the table
        added = await classifiers.seed_defaults(db)
        again = await classifiers.seed_defaults(db)
        products = await classifiers.list_kind(db, "product")
        regions = await classifiers.list_kind(db, "region")
    expected = sum(
        1 + len(children) for entries in defaults.CLASSIFIERS.values() for _, _, children in entries
    )
    assert (added, again) == (expected, 0)
    assert [p.code for p in products] == ["consumer", "mortgage", "car_loan", "refinancing", "business"]
    chisinau = next(r for r in regions if r.code == "chisinau")
    after = regions[regions.index(chisinau) + 1]
    assert (after.code, after.depth, after.parent_id) == ("chisinau_city", 1, chisinau.id)
    assert {"balti", "cahul", "orhei", "ungheni", "gagauzia", "comrat"} <= {r.code for r in regions}


async def test_migration_seeds_the_vocabularies_and_the_credit_pipeline(
    tmp_path: Path,
) -> None:
    """Tests empty every table after each test, so this one migrates a SQLite file of its own (the
    migrations tests build PostgreSQL from nothing with the same seed)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'seed.db'}"
    await migrate.upgrade(url)
    own = create_engine(url)
    try:
        async with create_sessionmaker(own)() as db:
            kinds = dict(
                (await db.execute(select(Classifier.kind, func.count()).group_by(Classifier.kind))).all()
            )
            pipeline = await db.scalar(select(Pipeline).where(Pipeline.is_default.is_(True)))
            assert pipeline is not None and pipeline.name == "Credit"
            stages = (
                await db.execute(
                    select(Stage.name, Stage.probability, Stage.kind)
                    .where(Stage.pipeline_id == pipeline.id)
                    .order_by(Stage.position)
                )
            ).all()
    finally:
        await own.dispose()
    assert set(kinds) == set(defaults.KINDS)
    assert kinds["product"] == 5 and kinds["region"] >= 20
    assert [tuple(s) for s in stages] == list(defaults.DEFAULT_STAGES)


async def test_labels_follow_the_language_and_fall_back_to_english(sessions: Sessions) -> None:
    async with sessions() as db, db.begin():
        made = await classifiers.create(
            db, SYSTEM, kind="segment", code="students", label_en="Students", label_ro="Studenți"
        )
        labels_ru = await classifiers.labels(db, "segment", "ru")
    assert made.label("ro") == "Studenți"
    assert made.label("ru") == "Students"  # left empty: English until translated
    assert labels_ru["students"] == "Students"


async def test_create_refuses_bad_codes_kinds_labels_and_duplicates(sessions: Sessions) -> None:
    async with sessions() as db, db.begin():
        await classifiers.create(db, SYSTEM, kind="product", code="microcredit", label_en="Microcredit")
        cases = [
            ({"kind": "planet", "code": "x", "label_en": "X"}, Invalid, "kind"),
            ({"kind": "product", "code": "", "label_en": "X"}, Invalid, "code"),
            ({"kind": "product", "code": "Bad Code!", "label_en": "X"}, Invalid, "code"),
            ({"kind": "product", "code": "x" * 51, "label_en": "X"}, Invalid, "code"),
            ({"kind": "product", "code": "ok", "label_en": "  "}, Invalid, "label_en"),
            ({"kind": "product", "code": "ok", "label_en": "X" * 201}, Invalid, "label_en"),
            ({"kind": "product", "code": "MICROCREDIT", "label_en": "Again"}, Conflict, "code"),
            ({"kind": "product", "code": "ok", "label_en": "X", "parent_id": 999999}, Invalid, "parent_id"),
        ]
        for fields, error, field in cases:
            with pytest.raises(error) as caught:
                await classifiers.create(db, SYSTEM, **fields)  # type: ignore[arg-type]
            assert caught.value.field == field, fields


async def test_a_parent_must_be_of_the_same_list_and_never_the_entry_or_its_descendant(
    sessions: Sessions,
) -> None:
    async with sessions() as db, db.begin():
        region = await classifiers.create(db, SYSTEM, kind="region", code="north", label_en="North")
        town = await classifiers.create(
            db, SYSTEM, kind="region", code="town", label_en="Town", parent_id=region.id
        )
        product = await classifiers.create(db, SYSTEM, kind="product", code="p1", label_en="P1")
        with pytest.raises(Invalid):
            await classifiers.create(
                db, SYSTEM, kind="product", code="p2", label_en="P2", parent_id=region.id
            )
        with pytest.raises(Invalid):
            await classifiers.update(db, SYSTEM, region.id, label_en="North", parent_id=town.id)
        with pytest.raises(Invalid):
            await classifiers.update(db, SYSTEM, region.id, label_en="North", parent_id=region.id)
        with pytest.raises(NotFound):
            await classifiers.update(db, SYSTEM, 999999, label_en="X")
        assert product.parent_id is None


async def test_deactivated_entries_leave_forms_but_stay_readable_and_changes_are_audited(
    sessions: Sessions,
) -> None:
    async with sessions() as db, db.begin():
        made = await classifiers.create(db, SYSTEM, kind="loss_reason", code="moved", label_en="Moved abroad")
        await classifiers.set_active(db, SYSTEM, made.id, False)
        active = await classifiers.list_kind(db, "loss_reason")
        everything = await classifiers.list_kind(db, "loss_reason", include_inactive=True)
        usable = await classifiers.is_active_code(db, "loss_reason", "moved")
        labels = await classifiers.labels(db, "loss_reason", "en")
        entries = list(
            await db.scalars(
                select(AuditEntry).where(AuditEntry.module == "classifiers").order_by(AuditEntry.id)
            )
        )
    assert "moved" not in [c.code for c in active]
    assert "moved" in [c.code for c in everything] and labels["moved"] == "Moved abroad"
    assert usable is False
    assert [e.action for e in entries] == ["create", "update"]
    assert entries[1].changes == {"active": [True, False]}
