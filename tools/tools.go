//go:build tools

// Package tools pins the development tools (sqlc) in their own module, so that users of the library never
// inherit their dependencies.
package tools

import _ "github.com/sqlc-dev/sqlc/cmd/sqlc"
