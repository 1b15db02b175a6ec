"""Generated from proto/voting/v1 by `make proto`. Do not edit."""
