"""What people see: terminal tables and pictures."""
