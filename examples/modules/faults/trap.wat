;; Fault module: divides by zero, which traps in WebAssembly. Fiso-Flow reports `trap` with the
;; reason "integer divide by zero". (Written in WAT because a C compiler may fold the division
;; away: dividing by zero is undefined behaviour in C.)
(module
  (memory (export "memory") 1)
  (func $divide (param $dividend i32) (param $divisor i32) (result i32)
    (i32.div_s (local.get $dividend) (local.get $divisor)))
  (func (export "_start")
    (drop (call $divide (i32.const 1) (i32.const 0)))))
