"""The trading model: orders, bars, fills and positions; the events; their JSON form."""
