"""Party and ShallowParty: kazoo's group membership, one ephemeral node per member.

- Party: members are ``<path>/<uuid hex>__party__`` holding the identifier
  as UTF-8; ``members()`` reads every member's node.
- ShallowParty: members are ``<path>/<uuid hex>-<identifier>``; one
  ``get_children`` lists them (the identifier must be a valid node name).

A member whose session ends leaves by itself. After LOST the member is gone
(its node with the session): call ``join`` again on the new session.
"""
from __future__ import annotations

import uuid

from twisted.internet.defer import Deferred

from zabd.client.client import ZooKeeperClient
from zabd.client.errors import NodeExistsError, NoNodeError

__all__ = ["Party", "ShallowParty"]

PARTY_MARK = "__party__"


class _BaseParty:
    def __init__(self, client: ZooKeeperClient, path: str, identifier: str | None, node: str) -> None:
        self.client = client
        self.path = path
        self.data = str(identifier or "").encode("utf-8")
        self.node = node
        self.create_path = f"{path}/{node}"
        self.participating = False
        self._ensured = False

    async def _ensure_parent(self) -> None:
        if not self._ensured:
            await self.client.ensure_path(self.path)
            self._ensured = True

    def join(self) -> Deferred[None]:
        """Become a member (again, harmlessly, if already one)."""
        async def join() -> None:
            await self._ensure_parent()
            try:
                await self.client.create(self.create_path, self.data, ephemeral=True)
            except NodeExistsError:
                pass  # created by an earlier attempt whose reply was lost with the connection
            self.participating = True
        return Deferred.fromCoroutine(join())

    def leave(self) -> Deferred[bool]:
        """Stop being a member; False if this member's node was already gone."""
        self.participating = False

        async def leave() -> bool:
            try:
                await self.client.delete(self.create_path)
            except NoNodeError:
                return False
            return True
        return Deferred.fromCoroutine(leave())

    async def _member_nodes(self) -> list[str]:
        await self._ensure_parent()
        return sorted(await self.client.get_children(self.path))

    def length(self) -> Deferred[int]:
        """The number of members."""
        async def count() -> int:
            return len(await self._member_nodes())
        return Deferred.fromCoroutine(count())

    def members(self) -> Deferred[list[str]]:
        raise NotImplementedError


class Party(_BaseParty):
    """Members with any identifier, kept in each member node's data."""

    def __init__(self, client: ZooKeeperClient, path: str, identifier: str | None = None) -> None:
        super().__init__(client, path, identifier, uuid.uuid4().hex + PARTY_MARK)

    async def _member_nodes(self) -> list[str]:
        return [name for name in await super()._member_nodes() if PARTY_MARK in name]

    def members(self) -> Deferred[list[str]]:
        """Every member's identifier (in node-name order, so in no meaningful order)."""
        async def read() -> list[str]:
            found = []
            for name in await self._member_nodes():
                try:
                    data, _ = await self.client.get(f"{self.path}/{name}")
                except NoNodeError:
                    continue  # left while we were reading
                found.append(data.decode("utf-8"))
            return found
        return Deferred.fromCoroutine(read())


class ShallowParty(_BaseParty):
    """Members whose identifier is part of their node's name: one read lists them all."""

    def __init__(self, client: ZooKeeperClient, path: str, identifier: str | None = None) -> None:
        name = str(identifier or "")
        if "/" in name:
            raise ValueError("a ShallowParty identifier must not contain '/'")
        super().__init__(client, path, identifier, uuid.uuid4().hex + "-" + name)

    def members(self) -> Deferred[list[str]]:
        """Every member's identifier."""
        async def read() -> list[str]:
            return [name[name.find("-") + 1:] for name in await self._member_nodes()]
        return Deferred.fromCoroutine(read())
