"""Events, commands, subjects and stream configs of wacast."""
