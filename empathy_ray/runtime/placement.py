"""Placing a role's actors together and giving a torch.distributed group its rendezvous.

Every role reserves one bundle per actor in one placement group (`reserve`; empathy_ray.actors.group
starts the actors in it): a multi-rank role is scheduled all at once or not at all, so two
half-placed groups cannot deadlock each other, and a restarted actor comes back in its own bundle.
"""

from __future__ import annotations

import socket
import uuid
from typing import Any

import ray
from ray.actor import ActorHandle
from ray.util.placement_group import PlacementGroup, placement_group, remove_placement_group

from empathy_ray.config import ActorResources
from empathy_ray.runtime.resources import Demand


def reserve(role: str, count: int, res: ActorResources, timeout_s: float) -> PlacementGroup:
    """A PACK placement group of `count` identical bundles, ready; raises when the cluster cannot
    hold it within `timeout_s` (and removes the pending request, so it does not hold resources later)."""
    bundles = [Demand.of_actor(res).bundle()] * count
    # named for `ray list placement-groups`; unique, since a name can be held by one live group only
    pg = placement_group(bundles, strategy="PACK", name=f"empathy-ray-{role}-{uuid.uuid4().hex[:8]}")
    try:
        ray.get(pg.ready(), timeout=timeout_s)
    except ray.exceptions.GetTimeoutError:
        remove_placement_group(pg)
        raise RuntimeError(
            f"could not place the {role}: {count} bundles of {bundles[0]} (strategy PACK) did not fit within "
            f"{timeout_s:g} s; cluster total {ray.cluster_resources()}, available now {ray.available_resources()}. "
            f"Lower {f'rl.{role}.num_workers or ' if count > 1 else ''}rl.{role}.num_cpus / num_gpus / "
            "resources, free what other roles hold, or add nodes that carry these resources"
        ) from None
    return pg


def rendezvous(actors: list[ActorHandle]) -> tuple[str, int, list[int]]:
    """Rank 0's node IP and a free port there (asked of rank 0 itself: only it knows which ports are free
    on its node), and each rank's local rank on its node. Every actor must have `address()`."""
    addresses = ray.get([a.address.remote() for a in actors])
    return addresses[0][0], addresses[0][1], local_ranks([ip for ip, _ in addresses])


def free_port() -> int:
    """A TCP port free on this node now (the OS picks it); the caller binds it soon after."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def node_address() -> tuple[str, int]:
    """This process's node IP as the other nodes reach it, and a free port on that node."""
    return ray.util.get_node_ip_address(), free_port()


def local_ranks(ips: list[str]) -> list[int]:
    """Rank of each process among those on the same node, in global rank order."""
    seen: dict[str, int] = {}
    out = []
    for ip in ips:
        out.append(seen.get(ip, 0))
        seen[ip] = out[-1] + 1
    return out


def split_even(items: list[Any], parts: int) -> list[list[Any]]:
    """Contiguous chunks whose sizes differ by at most one; the first chunks are the larger ones."""
    size, extra = divmod(len(items), parts)
    out, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        out.append(items[start:end])
        start = end
    return out
