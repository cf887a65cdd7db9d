"""Tests that start OS processes sharing one store and kill them."""
