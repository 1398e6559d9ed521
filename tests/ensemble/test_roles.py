"""Who proposes, critiques, synthesises and judges: the defaults, config roles, scores and tiers."""

from __future__ import annotations

import pytest

from rhtui.engine.config import DEFAULT_STUDENTS, StudentSpec
from rhtui.engine.ensemble.roles import TIERS, Roles, assign_roles, role_of

SIX = [StudentSpec(name=n) for n in DEFAULT_STUDENTS]
ALL_ON = {n: True for n in DEFAULT_STUDENTS}
PROPOSERS = ("rh-alpha", "rh-beta", "rh-gamma", "rh-delta", "rh-epsilon")


def test_defaults_zeta_critic_others_propose():
    roles = assign_roles(SIX, ALL_ON)
    assert roles == Roles(PROPOSERS, "rh-zeta", "rh-alpha", ("rh-zeta",))


def test_only_enabled_students_get_roles():
    roles = assign_roles(SIX, {**ALL_ON, "rh-beta": False, "rh-zeta": False})
    assert roles.proposers == ("rh-alpha", "rh-gamma", "rh-delta", "rh-epsilon")
    assert roles.critic is None
    assert roles.synthesiser == "rh-alpha"
    assert roles.judges == ("rh-alpha",)  # no critic: the synthesiser judges


def test_a_student_missing_from_enabled_keeps_its_config_switch():
    students = [*SIX[:5], StudentSpec(name="rh-zeta", enabled=False)]
    roles = assign_roles(students, {"rh-alpha": True})
    assert roles.critic is None
    assert roles.proposers == PROPOSERS


def test_absent_critic():
    roles = assign_roles(SIX[:3], {})
    assert roles == Roles(("rh-alpha", "rh-beta", "rh-gamma"), None, "rh-alpha", ("rh-alpha",))


def test_config_role_wins():
    students = [
        StudentSpec(name="rh-alpha", role="critic"),
        StudentSpec(name="rh-beta"),
        StudentSpec(name="rh-gamma", role="synthesis"),
        StudentSpec(name="rh-delta", role="judge"),
        StudentSpec(name="rh-epsilon", role="judge"),
        StudentSpec(name="rh-zeta", role="proposer"),
    ]
    roles = assign_roles(students, {})
    assert roles == Roles(("rh-beta", "rh-zeta"), "rh-alpha", "rh-gamma", ("rh-delta", "rh-epsilon"))


def test_zeta_with_a_role_and_another_critic():
    students = [StudentSpec(name="rh-alpha", role="critic"), StudentSpec(name="rh-beta"), StudentSpec(name="rh-zeta")]
    roles = assign_roles(students, {})
    assert roles.critic == "rh-alpha"  # the first critic in config order
    assert "rh-zeta" not in roles.proposers


def test_disabled_synthesis_student_falls_back_to_best_proposer():
    students = [*SIX, StudentSpec(name="merger", role="synthesis")]
    roles = assign_roles(students, {"merger": False}, scores={"rh-gamma": 7.5, "rh-beta": 6.0})
    assert roles.synthesiser == "rh-gamma"


def test_synthesiser_is_best_scoring_proposer():
    roles = assign_roles(SIX, ALL_ON, scores={"rh-alpha": 5.0, "rh-delta": 8.25, "rh-zeta": 9.9})
    assert roles.synthesiser == "rh-delta"  # the critic's score does not count


def test_synthesiser_ties_go_to_config_order():
    roles = assign_roles(SIX, ALL_ON, scores={"rh-epsilon": 7.0, "rh-beta": 7.0})
    assert roles.synthesiser == "rh-beta"


def test_proposer_without_score_ranks_below_any_score():
    roles = assign_roles(SIX, ALL_ON, scores={"rh-epsilon": 1.0, "rh-alpha": float("nan")})
    assert roles.synthesiser == "rh-epsilon"


def test_disabled_best_proposer_does_not_synthesise():
    roles = assign_roles(SIX, {**ALL_ON, "rh-delta": False}, scores={"rh-delta": 9.0, "rh-beta": 4.0})
    assert roles.synthesiser == "rh-beta"


def test_no_proposer_no_synthesiser():
    roles = assign_roles([StudentSpec(name="rh-zeta")], {})
    assert roles == Roles((), "rh-zeta", None, ("rh-zeta",))


def test_judge_panel_filtered_to_enabled_known_students():
    roles = assign_roles(
        SIX, {**ALL_ON, "rh-beta": False}, judges=["rh-gamma", "nobody", "rh-beta", "rh-alpha", "rh-gamma"]
    )
    assert roles.judges == ("rh-gamma", "rh-alpha")


def test_judge_panel_all_unavailable_falls_back():
    roles = assign_roles(SIX, {**ALL_ON, "rh-beta": False}, judges=["rh-beta", "ghost"])
    assert roles.judges == ("rh-zeta",)


def test_judge_role_students_before_critic():
    students = [*SIX, StudentSpec(name="judge-a", role="judge"), StudentSpec(name="judge-b", role="judge")]
    assert assign_roles(students, {}).judges == ("judge-a", "judge-b")


def test_panel_wins_over_judge_role():
    students = [*SIX, StudentSpec(name="judge-a", role="judge")]
    assert assign_roles(students, {}, judges=["rh-beta"]).judges == ("rh-beta",)


def test_tier_none_and_deep_are_a_full_round():
    full = assign_roles(SIX, ALL_ON)
    assert assign_roles(SIX, ALL_ON, tier="deep") == full
    assert full.judges and full.critic and full.synthesiser and len(full.proposers) == 5


def test_tier_quick():
    roles = assign_roles(SIX, ALL_ON, tier="quick", scores={"rh-epsilon": 9.0})
    assert roles == Roles(("rh-alpha", "rh-beta"), None, "rh-epsilon", ())


def test_tier_standard():
    roles = assign_roles(SIX, ALL_ON, tier="standard")
    assert roles == Roles(("rh-alpha", "rh-beta", "rh-gamma", "rh-delta"), "rh-zeta", "rh-alpha", ())


def test_tier_with_fewer_proposers_than_it_asks_for():
    roles = assign_roles(SIX[:1], {}, tier="standard")
    assert roles.proposers == ("rh-alpha",)


def test_unknown_tier():
    with pytest.raises(ValueError, match="quick, standard, deep"):
        assign_roles(SIX, ALL_ON, tier="huge")
    assert TIERS == ("quick", "standard", "deep")


def test_role_of_labels():
    roles = Roles(("rh-alpha", "rh-beta"), "rh-zeta", "rh-alpha", ("rh-zeta", "rh-gamma"))
    assert role_of(roles, "rh-alpha") == "proposal"  # proposes and synthesises: shows proposal
    assert role_of(roles, "rh-beta") == "proposal"
    assert role_of(roles, "rh-zeta") == "critique"  # critic and judge: shows critique
    assert role_of(roles, "rh-gamma") == "judge"
    assert role_of(roles, "rh-delta") == ""
    assert role_of(Roles((), None, "merger", ()), "merger") == "synthesis"
