"""Alerts: the rule language (rules), evaluation on every tick (evaluate), the tick-side service,
and the alert book (book): adding, changing and removing rules, for every front end."""
