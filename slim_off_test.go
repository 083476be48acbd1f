//go:build !gale_slim

package gale_test

const slimBuild = false
