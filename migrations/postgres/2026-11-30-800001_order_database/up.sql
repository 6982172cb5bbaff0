-- The database of the portal session an order was placed from, kept only when its
-- account had no database yet: crediting the order binds the account to it if the
-- account still has none. Orders placed before keep NULL and bind nothing.
ALTER TABLE orders ADD COLUMN dbuuid TEXT;
