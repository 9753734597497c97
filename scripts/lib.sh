# Shared by the scripts (sourced, not run).

# `--search-attribute=Name=Type` for each line of scripts/search-attributes.txt: the flags of a
# Temporal dev server that serves our workflows. Word-split by the caller: `$(search_attribute_flags)`.
search_attribute_flags() {
  local dir
  dir=$(dirname "${BASH_SOURCE[0]}")
  grep -v '^#' "$dir/search-attributes.txt" | grep -v '^$' | sed 's/^/--search-attribute=/'
}
