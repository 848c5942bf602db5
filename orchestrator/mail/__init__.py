"""A service's mail domain: its DKIM key, mailboxes and aliases."""
