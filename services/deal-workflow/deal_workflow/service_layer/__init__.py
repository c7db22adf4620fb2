"""Use cases shared by the command handlers and the business processes: the domain rules applied
to the rows of one transaction, with audit entries and outbox events."""
