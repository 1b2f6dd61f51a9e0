"""The gateway's rules, free of I/O: the Device aggregate and the send lane."""
