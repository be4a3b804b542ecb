"""UniFi Access: the LAN controller's doors and PIN readers as locks."""
