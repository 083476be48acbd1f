// Command hello is the smallest program gale deploy's tests cross-compile.
package main

import "fmt"

func main() { fmt.Println("hello from a Lambda bootstrap") }
