"""Durable schedules: when ticks fall and what a due tick does, above the store.

The store (``duraflow.providers``) keeps a schedule's definition and state and applies
changes atomically; everything that needs a calendar lives here, with no I/O of its own:

* ``ticks``: cron (via cronsim) and ``@every`` in an IANA zone, with the DST rule;
* ``spec``: checking what a client asks for (specific ``ValueError`` subclasses, ``errors``);
* ``planner``: firing a due schedule: overlap policies, catch-up, jitter, backfills;
* ``changes``: what create / update / pause / resume / trigger / backfill do to the state;
* ``models``: ``ScheduleInfo`` and ``ScheduleRun``, what a client reads;
* ``api``: ``AsyncClient``'s schedule calls.

The runtime's ticker (``duraflow.runtime.schedule_ticker``) fires due ticks with the planner.
"""
