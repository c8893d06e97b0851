from services.mock_llm.main import main

raise SystemExit(main())
