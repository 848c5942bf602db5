"""Cost showback: what each ministry's services cost it per month, from their lifetimes and the
catalogue's price per plan."""
