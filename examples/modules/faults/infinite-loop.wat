;; Fault module: `_start` never returns and makes no host calls. Fiso-Flow stops it at the
;; interceptor's timeout and reports `timeout`.
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $forever
      (br $forever))))
