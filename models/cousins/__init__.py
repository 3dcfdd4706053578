"""The twin-against-cousins experiment (issue 10): do students trained on digital cousins
transfer better to the real scene than students trained on the digital twin?

    scenes.py      the real room, its scan and extraction, and the twin, cousins, held-out,
                   broad and real cabinets in the arm's frame
    experiment.py  `ExperimentConfig`, demonstrations of the `cabinet` task's teacher,
                   behaviour cloning (models.bc), evaluation, the pooled table with
                   Wilson intervals (`run_experiment`)
    report.py      its docs/RESULTS.md section

The task is the registered `cabinet` task (xembody.sim.tasks.cabinet) on the batched env,
its teacher `CabinetTeacher` (xembody.models.teachers). It trains and evaluates students,
so it lives in models/. Scene generation comes from
xembody.sim.scenes; the scan and its extraction are perception (xembody.real.perception),
which models may not import: `run_experiment` and `build_scenes` take a `perceive` function
instead, and `xembody cousins experiment` passes `scan_and_extract`.
"""
