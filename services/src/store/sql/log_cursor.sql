SELECT position FROM cursors WHERE name = $1
