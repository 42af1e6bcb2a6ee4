 
darfursd :tB
2026-11-01Rs