-- leadership: the lease as it stands. ARGV: now. Returns {holder or '', remaining, term}.
return leadership()
