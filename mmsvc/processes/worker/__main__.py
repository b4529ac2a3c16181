from mmsvc.processes.worker.main import main

main()
