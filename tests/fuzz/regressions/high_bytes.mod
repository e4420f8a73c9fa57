network a = ReLU 
network Ã© = ReLU
network b = Linear(4ÿ, 4)
