"""The org tree as of a date, for figures that must not follow later re-orgs (issue #5 item 2).

Subtree rows are stored for the current tree. A subtree as of a date D is rebuilt from them and
from own rows: where a unit's subtree on D is the same set of units as today, its stored subtree
row is exact; elsewhere we take the unit's own row and descend into its children of D. A re-org
is usually local, so this reads a handful of stored rows.

The tree of D is ``org_hierarchy.selectors.parent_map_as_of(D)`` for the units that existed
then; a unit that did not exist on D (created later, or closed before) hangs where it hangs
today, so every unit's figures are counted exactly once in every tree.
"""
import datetime
from functools import cached_property

from django.utils import timezone

from org_hierarchy.models import OrgUnit
from org_hierarchy.selectors import parent_map_as_of


class Tree:
    def __init__(self, parents):
        self.parents = parents  # unit id -> parent id or None
        self._desc = {}

    @cached_property
    def children(self):
        children = {}
        for unit, parent in self.parents.items():
            children.setdefault(parent, []).append(unit)
        return children

    def children_of(self, unit):
        return sorted(self.children.get(unit, ()))

    def descendants(self, unit):
        """``unit`` and every unit under it, as a frozenset."""
        if unit not in self._desc:
            found, todo = {unit}, [unit]
            while todo:
                for child in self.children.get(todo.pop(), ()):
                    if child not in found:
                        found.add(child)
                        todo.append(child)
            self._desc[unit] = frozenset(found)
        return self._desc[unit]


def current_tree():
    return Tree(dict(OrgUnit.objects.order_by().values_list("pk", "parent_id")))


def end_of_day(day):
    """The moment a date ends in the project's time zone: the tree "as of" 2025-06-30 is the
    tree at the end of that day."""
    start = datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time())
    return timezone.make_aware(start) - datetime.timedelta(microseconds=1)


def tree_as_of(day, now=None):
    now = now or current_tree()
    then = parent_map_as_of(end_of_day(day))
    return Tree({unit: then.get(unit, parent) for unit, parent in now.parents.items()})


class Decomposition:
    """Which stored rows make up each unit's subtree as of a date, trimmed to a scope."""

    def __init__(self, now, then, scope=None):
        self.now, self.then, self.scope = now, then, scope  # scope: unit ids, None for all

    def covers(self, unit):
        return self.scope is None or unit in self.scope

    def parts(self, unit):
        """``(subtree units, own units)``: the as-of subtree of ``unit`` (within the scope) is the
        sum of the stored subtree rows of the first and the own rows of the second."""
        if self.covers(unit) and self.then.descendants(unit) == self.now.descendants(unit):
            # A covered unit's current subtree is covered entirely; a leaf has only own rows.
            return ({unit}, set()) if self.now.children.get(unit) else (set(), {unit})
        subtree, own = set(), {unit} if self.covers(unit) else set()
        for child in self.then.children_of(unit):
            child_subtree, child_own = self.parts(child)
            subtree |= child_subtree
            own |= child_own
        return subtree, own
