//! Operator commands for packs and orders.
