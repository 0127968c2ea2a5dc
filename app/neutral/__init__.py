"""What every layer shares and no platform owns: steps, flow field types, outcome
names, phone numbers and the neutral turn a request parses into. Imports nothing
else of app."""
