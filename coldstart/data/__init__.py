"""The data stage: the UCI Online Retail table, the cold-start protocol and its subgroups, and the
published benchmark's split."""
