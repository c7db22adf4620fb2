"""Message handlers: plain async functions ``(payload, ctx, *dependencies)``.

Dependencies are bound in :mod:`notifier.bootstrap`; nothing here knows about RabbitMQ.
"""
