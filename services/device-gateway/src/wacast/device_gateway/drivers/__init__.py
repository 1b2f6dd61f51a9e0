"""WhatsApp drivers: `sim` (the wa-simulator) and `whatsapp` (neonize)."""
