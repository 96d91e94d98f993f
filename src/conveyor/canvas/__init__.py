"""Workflows: signatures, chain, group (Celery's canvas).

`signature.py` builds them, `nodes.py` is their form inside messages, `flow.py` sends them and
moves them on when a step ends, `group_result.py` is the handle on a group's results. This
package's `__init__` imports nothing, so the message module can use `nodes` without a cycle;
import the names from `conveyor` (`from conveyor import chain, group, signature`).
"""
